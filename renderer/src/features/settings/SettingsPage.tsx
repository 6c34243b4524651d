import { useEffect, useState } from 'react'
import type { ProviderTestResult, SecretStatus, Settings } from '../../../../preload/contract'
import { api } from '../../api/client'

export function SettingsPage(): React.JSX.Element {
  const [settings, setSettings] = useState<Settings>()
  const [secrets, setSecrets] = useState<SecretStatus[]>([])
  const [message, setMessage] = useState<string>()

  useEffect(() => {
    void api.invoke('settings:get', {}).then((r) => r.ok && setSettings(r.value))
    void api.invoke('secrets:status', {}).then((r) => r.ok && setSecrets(r.value))
  }, [])

  const update = async (patch: Partial<Settings>): Promise<void> => {
    const r = await api.invoke('settings:update', { patch })
    if (r.ok) {
      setSettings(r.value)
      setMessage('Saved.')
    } else setMessage(r.error.message)
  }

  if (!settings) return <p>Loading settings…</p>
  return (
    <section className="settings">
      <h1>Settings</h1>
      <fieldset>
        <legend>Library</legend>
        <label>
          Library folder
          <input
            data-testid="library-root"
            defaultValue={settings.libraryRoot}
            onBlur={(e) =>
              e.target.value !== settings.libraryRoot && void update({ libraryRoot: e.target.value })
            }
          />
        </label>
        <p className="hint">
          New downloads go to this folder. Folders of other apps (A1111, ComfyUI) are added under Models →
          Library → Maintenance.
        </p>
        <label>
          Concurrent downloads
          <input
            type="number"
            min={1}
            max={8}
            data-testid="concurrent-downloads"
            value={settings.concurrentDownloads}
            onChange={(e) => void update({ concurrentDownloads: Number(e.target.value) })}
          />
        </label>
        <label>
          Mature content
          <select
            data-testid="nsfw"
            value={settings.nsfw}
            onChange={(e) => void update({ nsfw: e.target.value as Settings['nsfw'] })}
          >
            <option value="hide">Hide</option>
            <option value="blur">Blur</option>
            <option value="show">Show</option>
          </select>
        </label>
      </fieldset>
      <EngineSettings settings={settings} update={update} />
      <fieldset>
        <legend>Accounts</legend>
        {secrets.map((s) => (
          <SecretField
            key={s.name}
            status={s}
            onChange={(next) => setSecrets((all) => all.map((x) => (x.name === next.name ? next : x)))}
          />
        ))}
      </fieldset>
      {message && <p role="note">{message}</p>}
    </section>
  )
}

const PROVIDERS: { id: Settings['executionProvider']; label: string }[] = [
  { id: 'auto', label: 'Automatic (GPU if one starts, else CPU)' },
  { id: 'cpu', label: 'CPU' },
  { id: 'webgpu', label: 'WebGPU (any GPU, bundled)' },
  { id: 'cuda', label: 'CUDA (NVIDIA, Linux x64/Windows; extra install)' },
  { id: 'dml', label: 'DirectML (Windows)' },
  { id: 'coreml', label: 'CoreML (macOS)' },
]

type TestableProvider = Exclude<Settings['executionProvider'], 'auto'>

/** Execution provider choice, and a Test per provider that runs a tiny graph and reports its time. */
function EngineSettings({
  settings,
  update,
}: {
  settings: Settings
  update: (patch: Partial<Settings>) => Promise<void>
}): React.JSX.Element {
  const [tests, setTests] = useState<Partial<Record<TestableProvider, ProviderTestResult | 'running'>>>({})
  const test = async (provider: TestableProvider): Promise<void> => {
    setTests((t) => ({ ...t, [provider]: 'running' }))
    const r = await api.invoke('engine:test-provider', { provider })
    const result: ProviderTestResult = r.ok
      ? r.value
      : { provider, ok: false, ran: 'cpu', createMs: 0, runMs: 0, maxDiff: 0, message: r.error.message }
    setTests((t) => ({ ...t, [provider]: result }))
  }
  return (
    <fieldset>
      <legend>Engine</legend>
      <label>
        Execution provider
        <select
          data-testid="execution-provider"
          value={settings.executionProvider}
          onChange={(e) =>
            void update({ executionProvider: e.target.value as Settings['executionProvider'] })
          }
        >
          {PROVIDERS.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      <p className="hint">
        Used by the next generation. A provider that does not start falls back to the CPU; the status bar
        names the provider that opened.
      </p>
      <label>
        GPU compute precision
        <select
          data-testid="compute-precision"
          value={settings.computePrecision}
          onChange={(e) => void update({ computePrecision: e.target.value as Settings['computePrecision'] })}
        >
          <option value="fp16">fp16 (faster, half the memory)</option>
          <option value="fp32">fp32</option>
        </select>
      </label>
      <p className="hint">
        On GPU providers the text encoders and UNet run in fp16 with norms, softmax and the timestep embedding
        in fp32; the VAE always runs in fp32. The CPU always computes in fp32. The status bar and the image's
        infotext (Compute precision) say what ran.
      </p>
      <ul className="provider-tests">
        {PROVIDERS.filter((p): p is { id: TestableProvider; label: string } => p.id !== 'auto').map((p) => {
          const t = tests[p.id]
          return (
            <li key={p.id}>
              <button
                type="button"
                data-testid={`test-provider-${p.id}`}
                disabled={t === 'running'}
                onClick={() => void test(p.id)}
              >
                Test {p.id.toUpperCase()}
              </button>
              <span
                data-testid={`provider-result-${p.id}`}
                className={t && t !== 'running' ? (t.ok ? 'ok' : 'bad') : ''}
              >
                {t === 'running' ? ' Testing…' : t ? ` ${t.ok ? '✓' : '✗'} ${t.message}` : ''}
              </span>
            </li>
          )
        })}
      </ul>
    </fieldset>
  )
}

const SECRET_LABELS: Record<SecretStatus['name'], string> = {
  civitaiApiKey: 'Civitai API key',
  hfToken: 'Hugging Face token',
}

function SecretField({
  status,
  onChange,
}: {
  status: SecretStatus
  onChange: (s: SecretStatus) => void
}): React.JSX.Element {
  const [value, setValue] = useState('')
  const [test, setTest] = useState<{ ok: boolean; message: string; testing?: boolean }>()
  const runTest = async (): Promise<void> => {
    setTest({ ok: false, message: 'Testing…', testing: true })
    const r = await api.invoke('secrets:test', { name: status.name, ...(value ? { value } : {}) })
    setTest(r.ok ? r.value : { ok: false, message: r.error.message })
  }
  return (
    <>
      <form
        className="secret"
        onSubmit={(e) => {
          e.preventDefault()
          void api.invoke('secrets:set', { name: status.name, value }).then((r) => {
            if (r.ok) {
              onChange(r.value)
              setValue('')
              setTest(undefined)
            }
          })
        }}
      >
        <label>
          {SECRET_LABELS[status.name]}
          <input
            type="password"
            autoComplete="off"
            data-testid={`secret-${status.name}`}
            placeholder={status.isSet ? `set (${status.hint ?? 'hidden'}, from ${status.source})` : 'not set'}
            value={value}
            onChange={(e) => setValue(e.target.value)}
          />
        </label>
        <button type="submit" disabled={!value}>
          Save
        </button>
        <button
          type="button"
          disabled={(!value && !status.isSet) || test?.testing}
          onClick={() => void runTest()}
          title={value ? 'Check the key you typed' : 'Check the saved key'}
          data-testid={`test-${status.name}`}
        >
          Test
        </button>
        {status.isSet && status.source === 'store' && (
          <button
            type="button"
            onClick={() =>
              void api.invoke('secrets:clear', { name: status.name }).then((r) => {
                if (r.ok) {
                  onChange(r.value)
                  setTest(undefined)
                }
              })
            }
          >
            Clear
          </button>
        )}
      </form>
      {test && (
        <p
          className={`test-result ${test.testing ? '' : test.ok ? 'ok' : 'bad'}`}
          role="status"
          data-testid={`test-result-${status.name}`}
        >
          {test.message}
        </p>
      )}
    </>
  )
}
