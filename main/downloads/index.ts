/** Download queue: see manager.ts for the API. */
export { DownloadManager, type DownloadManagerOptions } from './manager'
export type * from './types'
export { sanitizeFileName, parseContentDisposition } from './filename'
export type { DownloadFs } from './transfer'
