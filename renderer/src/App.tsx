import { useEffect, useState } from 'react'
import { Placeholder } from './components/Placeholder'
import { StatusBar } from './components/StatusBar'
import { SettingsPage } from './features/settings/SettingsPage'
import { ModelsPage } from './features/models/ModelsPage'
import { GalleryPage } from './features/gallery/GalleryPage'
import { ParametersDrop } from './features/gallery/ParametersDrop'
import { Img2imgPage } from './features/studio/Img2imgPage'
import { InpaintPage } from './features/studio/InpaintPage'
import { OutpaintPage } from './features/studio/OutpaintPage'
import { CreatePage } from './features/create/CreatePage'
import { ConnectionBanner } from './components/ConnectionBanner'
import { ensureAttached } from './features/studio/studio-state'
import { SECTIONS, sectionFromHash, type SectionId } from './state/sections'

function Section({ id }: { id: SectionId }): React.JSX.Element {
  switch (id) {
    case 'create':
      return <CreatePage />
    case 'models':
      return <ModelsPage />
    case 'settings':
      return <SettingsPage />
    case 'img2img':
      return <Img2imgPage />
    case 'inpaint':
      return <InpaintPage />
    case 'outpaint':
      return <OutpaintPage />
    case 'gallery':
      return <GalleryPage />
    default: {
      const s = SECTIONS.find((x) => x.id === id)
      return <Placeholder title={s?.label ?? id} text={s?.hint ?? ''} />
    }
  }
}

export function App(): React.JSX.Element {
  const [section, setSection] = useState<SectionId>(() => sectionFromHash(location.hash))
  useEffect(() => {
    const onHash = (): void => setSection(sectionFromHash(location.hash))
    window.addEventListener('hashchange', onHash)
    return () => window.removeEventListener('hashchange', onHash)
  }, [])
  // Jobs survive the page: a reload (or a reconnect) shows the generation still running in main.
  useEffect(() => ensureAttached(), [])

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Sections">
        <div className="brand">Atelier</div>
        {SECTIONS.map((s) => (
          <a
            key={s.id}
            href={`#/${s.id}`}
            className={s.id === section ? 'active' : undefined}
            aria-current={s.id === section ? 'page' : undefined}
            title={s.hint}
          >
            {s.label}
          </a>
        ))}
      </nav>
      <main className="content" data-testid={`section-${section}`}>
        <ConnectionBanner />
        <Section id={section} />
      </main>
      <StatusBar />
      <ParametersDrop />
    </div>
  )
}
