import type { CompatInfo, LibraryModel } from '../../../../preload/contract'

const COMPAT_LABEL: Record<CompatInfo['state'], string> = {
  compatible: 'Compatible',
  partial: 'Partly compatible',
  incompatible: 'Incompatible',
  unknown: 'Compatibility unknown',
}

export function CompatBadge({ compat, testId }: { compat: CompatInfo; testId?: string }): React.JSX.Element {
  return (
    <span className={`badge compat-${compat.state}`} title={compat.reason} data-testid={testId}>
      {COMPAT_LABEL[compat.state]}
    </span>
  )
}

/** The badge plus its reason and, when there are several checkpoints, one line per checkpoint. */
export function CompatDetails({ compat }: { compat: CompatInfo }): React.JSX.Element {
  return (
    <div className="compat" data-testid="compat">
      <CompatBadge compat={compat} testId="compat-badge" />
      <span className="muted">{compat.reason}</span>
      {compat.checkpoints.length > 1 && (
        <ul className="compat-list">
          {compat.checkpoints.map((c) => (
            <li key={c.id}>
              <span className={`dot compat-${c.state}`} aria-hidden /> {c.name}: {c.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}

export function Tag({
  children,
  tone = 'plain',
  testId,
}: {
  children: React.ReactNode
  tone?: 'plain' | 'good' | 'warn' | 'bad' | 'accent'
  testId?: string
}): React.JSX.Element {
  return (
    <span className={`badge tone-${tone}`} data-testid={testId}>
      {children}
    </span>
  )
}

export function VerifiedTag({ m }: { m: LibraryModel }): React.JSX.Element {
  if (m.verified === 'verified') return <Tag tone="good">Verified</Tag>
  if (m.verified === 'mismatch') return <Tag tone="bad">Hash mismatch</Tag>
  return <Tag>Unverified</Tag>
}
