/** "Test" buttons of Settings: ask the service who the key belongs to (Civitai /api/v1/me, HF whoami-v2). */
import { z } from 'zod'
import type { SecretName, SecretTestResult } from '../../../preload/contract'
import { civitaiError } from '../../remote/civitai/errors'
import { RemoteError } from '../../remote/errors'
import { JsonHttp } from '../../remote/http'
import { hfErrorMapper } from '../../remote/huggingface/errors'

const civitaiMe = z.object({ username: z.string().nullish() }).passthrough()
const hfWhoami = z.object({ name: z.string().nullish() }).passthrough()

export async function testSecret(
  name: SecretName,
  key: string | undefined,
  baseUrl: string,
): Promise<SecretTestResult> {
  const service = name === 'civitaiApiKey' ? 'Civitai' : 'Hugging Face'
  if (!key)
    return { ok: false, message: `No ${service} ${name === 'civitaiApiKey' ? 'API key' : 'token'} is set.` }
  const retry = { retries: 0 }
  try {
    if (name === 'civitaiApiKey') {
      const http = new JsonHttp('Civitai', { baseUrl, token: key, retry, timeoutMs: 15_000 }, civitaiError)
      const { data } = await http.json('/api/v1/me', civitaiMe)
      return {
        ok: true,
        message: `Civitai accepted the key${data.username ? ` (signed in as ${data.username})` : ''}.`,
      }
    }
    const http = new JsonHttp(
      'Hugging Face',
      { baseUrl, token: key, retry, timeoutMs: 15_000 },
      hfErrorMapper(baseUrl),
    )
    const { data } = await http.json('/api/whoami-v2', hfWhoami)
    return { ok: true, message: `Hugging Face accepted the token${data.name ? ` (${data.name})` : ''}.` }
  } catch (err) {
    if (
      err instanceof RemoteError &&
      (err.code === 'unauthorized' || err.status === 401 || err.status === 403)
    ) {
      return {
        ok: false,
        message: `${service} rejected this ${name === 'civitaiApiKey' ? 'key' : 'token'}; copy it again from your account settings.`,
      }
    }
    return { ok: false, message: err instanceof Error ? err.message : String(err) }
  }
}
