/**
 * Where an API credential may be sent (issue 18, attack 12): the configured API's origin, and the download
 * hosts that API documents (remote-apis.md): Civitai serves its API and `/api/download` on civitai.com and
 * civitai.red; Hugging Face resolves files on the hub's own origin (CDN redirects never get the token).
 */
const CIVITAI_ORIGINS = ['https://civitai.com', 'https://civitai.red']

/** Where a source's credential may be sent: the configured base URL's origin (plus documented twins). */
export function credentialOrigins(baseUrl: string | null): string[] {
  if (!baseUrl) return []
  let origin: string
  try {
    origin = new URL(baseUrl).origin
  } catch {
    return []
  }
  return CIVITAI_ORIGINS.includes(origin) ? [...CIVITAI_ORIGINS] : [origin]
}
