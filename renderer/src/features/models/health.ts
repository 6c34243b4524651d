import type { LibraryModel } from '../../../../preload/contract'

/**
 * The one health badge a library card or row shows. A file that the library could not read (`problem`) and a
 * file whose SHA-256 no longer matches the published hash ("Check files" found a mismatch) are both damaged:
 * the user should re-download them.
 */
export type Health = 'damaged' | 'verified' | 'unverified'

export function healthOf(m: Pick<LibraryModel, 'problem' | 'verified'>): Health {
  if (m.problem || m.verified === 'mismatch') return 'damaged'
  return m.verified === 'verified' ? 'verified' : 'unverified'
}
