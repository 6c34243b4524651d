export type LibraryErrorCode =
  'not-found' | 'ambiguous' | 'exists' | 'invalid-name' | 'not-a-model' | 'corrupt' | 'io' | 'disposed'

/** A user-facing library error: the message names the model or file and the problem. */
export class LibraryError extends Error {
  constructor(
    message: string,
    readonly code: LibraryErrorCode,
  ) {
    super(message)
    this.name = 'LibraryError'
  }
}
