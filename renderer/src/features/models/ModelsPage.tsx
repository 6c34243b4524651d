import { BrowseView } from './BrowseView'
import { isActive, useDownloads } from './data'
import { DownloadsView } from './DownloadsView'
import { LibraryView } from './LibraryView'
import { ModelPage } from './ModelPage'
import { useModelsRoute } from './route'

/** The Models section: browse Civitai / Hugging Face, a model's page, the download queue, the local library. */
export function ModelsPage(): React.JSX.Element {
  const route = useModelsRoute()
  const downloads = useDownloads()
  const active = downloads.filter(isActive).length
  if (route.view === 'elsewhere') return <div className="models" />
  const tab = route.view === 'model' ? 'browse' : route.view
  return (
    <div className="models">
      <nav className="models-tabs" aria-label="Models">
        <a
          href="#/models/browse"
          aria-current={tab === 'browse' ? 'page' : undefined}
          data-testid="tab-browse"
        >
          Browse
        </a>
        <a
          href="#/models/library"
          aria-current={tab === 'library' ? 'page' : undefined}
          data-testid="tab-library"
        >
          Library
        </a>
        <a
          href="#/models/downloads"
          aria-current={tab === 'downloads' ? 'page' : undefined}
          data-testid="tab-downloads"
        >
          Downloads
          {active > 0 && (
            <span className="count" aria-label={`${active} active`}>
              {active}
            </span>
          )}
        </a>
      </nav>
      {route.view === 'browse' && <BrowseView key={route.params.toString()} params={route.params} />}
      {route.view === 'model' && <ModelPage source={route.source} id={route.id} version={route.version} />}
      {route.view === 'downloads' && <DownloadsView />}
      {route.view === 'library' && <LibraryView key={route.params.get('id') ?? ''} params={route.params} />}
    </div>
  )
}
