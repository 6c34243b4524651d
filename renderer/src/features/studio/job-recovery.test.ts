import { describe, expect, it } from 'vitest'
import { lostJobMessage, waitingText } from './job-recovery'

const job = { step: 3, total: 60 }

describe('a followed job when the connection drops', () => {
  it('says the connection is lost at its step instead of a frozen step count', () => {
    expect(waitingText(job)).toBe('Connection lost at step 3/60 — waiting for Atelier to come back…')
    expect(waitingText({ step: 0, total: 0 })).toBe('Connection lost — waiting for Atelier to come back…')
  })

  it('is interrupted when Atelier no longer knows the job (a restart), with what to do next', () => {
    const m = lostJobMessage(job, undefined)
    expect(m.kind).toBe('error')
    expect(m.text).toMatch(/^Interrupted: Atelier restarted during this generation at step 3\/60/)
    expect(m.text).toContain('press Generate to run it again')
  })

  it('reports how a job that ended meanwhile ended', () => {
    expect(lostJobMessage(job, { state: 'done' })).toEqual({
      kind: 'info',
      text: 'This generation finished while the connection was down; its images are in the Gallery.',
    })
    expect(lostJobMessage(job, { state: 'failed', message: 'out of memory' })).toEqual({
      kind: 'error',
      text: 'This generation failed while the connection was down: out of memory',
    })
    expect(lostJobMessage(job, { state: 'cancelled' }).kind).toBe('info')
    expect(lostJobMessage(job, { state: 'running' }).text).toContain('still running')
  })
})
