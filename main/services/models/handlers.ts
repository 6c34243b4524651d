/** Contract handlers of the models domain (spread into main/services/api.ts). */
import type { modelsRequestSchemas } from '../../../preload/contract-models'
import type { Handlers } from '../api'
import type { ModelsService } from './service'

export type ModelsHandlers = Pick<Handlers, keyof typeof modelsRequestSchemas>

export function modelsHandlers(models: ModelsService): ModelsHandlers {
  return {
    'models:search': (req) => models.search(req),
    'models:options': ({ source }) => models.options(source),
    'models:details': (req) => models.details(req),
    'models:install': (req) => models.install(req),
    'models:by-hash': (req) => models.byHash(req.hash),
    'remote:image': ({ url }) => models.image(url),
    'downloads:list': () => models.downloads(),
    'downloads:pause': ({ id }) => models.downloadAction('pause', id),
    'downloads:resume': ({ id }) => models.downloadAction('resume', id),
    'downloads:cancel': ({ id }) => models.downloadAction('cancel', id),
    'downloads:retry': ({ id }) => models.downloadAction('retry', id),
    'downloads:clear': () => models.clearDownloads(),
    'library:list': (q) => models.libraryList(q),
    'library:get': ({ id }) => models.libraryGet(id),
    'library:preview': ({ id }) => models.libraryPreview(id),
    'library:rename': ({ id, name }) => models.libraryRename(id, name),
    'library:delete': ({ id }) => models.libraryDelete(id),
    'library:scan': () => models.libraryScan(),
    'library:doctor': ({ rehash }) => models.libraryDoctor(rehash ?? false),
    'library:roots': () => models.libraryRoots(),
    'library:add-root': ({ path }) => models.libraryAddRoot(path),
    'secrets:test': ({ name, value }) => models.testSecret(name, value),
  }
}
