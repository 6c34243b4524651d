import { useEffect, useState } from 'react'
import type { SecretStatus, Settings } from '../../../../preload/contract'
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
