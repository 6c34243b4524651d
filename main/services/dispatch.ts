import type { Channel, Result } from '../../preload/contract'
import { requestSchemas } from '../../preload/contract'
import type { CallContext, Handlers } from './api'
import { invalidInput, toApiError } from './errors'

function isChannel(name: unknown): name is Channel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(requestSchemas, name)
}

/**
 * The one entry every door uses: validates the channel and the request, runs the handler, and answers a
 * Result envelope. Nothing thrown crosses the boundary.
 */
export async function dispatch(
  handlers: Handlers,
  channel: unknown,
  payload: unknown,
  ctx: CallContext,
): Promise<Result<unknown>> {
  if (!isChannel(channel)) {
    return {
      ok: false,
      error: { code: 'unknown-channel', message: `Unknown channel ${String(channel).slice(0, 80)}.` },
    }
  }
  const parsed = requestSchemas[channel].safeParse(payload ?? {})
  if (!parsed.success) return { ok: false, error: toApiError(invalidInput(parsed.error.issues)) }
  try {
    const handler = handlers[channel] as (req: unknown, ctx: CallContext) => unknown
    return { ok: true, value: await handler(parsed.data, ctx) }
  } catch (err) {
    const error = toApiError(err)
    if (error.code === 'internal') console.error(`[${channel}]`, err)
    return { ok: false, error }
  }
}
