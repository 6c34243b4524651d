/** The models domain: search, install, downloads, library and key checks (see service.ts). */
export { ModelsService, type ModelsServiceOptions } from './service'
export { parseModelRef, type ModelRef } from './refs'
export { CLIP_L_REPO, fetchClipTokenizer, tokenizerDir } from './tokenizer'
