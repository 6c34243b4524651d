/** The models domain: search, install, downloads, library and key checks (see service.ts). */
export { ModelsService, type ModelsServiceOptions } from './service'
export { parseModelRef, type ModelRef } from './refs'
export { CLIP_L_REPO, fetchClipTokenizer, tokenizerDir } from './tokenizer'
export { toAppError } from './errors'
/** The library's records and constants, for the doors that print them (the CLI's `library` command). */
export { MODEL_FAMILIES, MODEL_SOURCES, MODEL_TYPES } from '../../library/types'
export type { ModelFamily, ModelRecord, ModelSource, ModelType, ScanProgress } from '../../library/types'
