import type { Session } from 'electron'
import { pacProxyResolver, setSystemProxyResolver } from '../platform/proxy'

/**
 * The desktop app's main-process clients (downloads, Civitai / Hugging Face, previews, image prompts) follow the
 * system proxy (OS settings, PAC, Chromium's --proxy-server) through `session.resolveProxy`, asked per
 * connection. HTTPS_PROXY / HTTP_PROXY / NO_PROXY still win when set (platform/proxy.ts).
 */
export function useSystemProxy(session: Pick<Session, 'resolveProxy'>): void {
  setSystemProxyResolver(pacProxyResolver((url) => session.resolveProxy(url)))
}
