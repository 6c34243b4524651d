/** Remote model sources: Civitai and Hugging Face clients mapping to one DTO (see ./types). */
export * from './types'
export { RemoteError, isRemoteError, type RemoteErrorCode } from './errors'
export { USER_AGENT, type RemoteClientConfig } from './http'
export { retryPolicy, defaultRetryPolicy, type RetryPolicy } from './retry'
export { CivitaiClient, CIVITAI_BASE_URL, type CivitaiSearchQuery, type CivitaiEnums } from './civitai/client'
export { HuggingFaceClient, HF_BASE_URL, type HfSearchQuery } from './huggingface/client'
