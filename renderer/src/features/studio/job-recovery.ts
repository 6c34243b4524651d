/**
 * What the studio says about a generation it was following when the connection to Atelier dropped: while
 * the connection is down (the panel must not look frozen at "step 1/N"), and once it is back and the job is
 * no longer running (finished meanwhile, or gone because Atelier restarted). Pure: unit-tested.
 */
import type { JobInfo } from '../../../../preload/contract-types'

export interface FollowedJob {
  step: number
  total: number
}

function at(job: FollowedJob): string {
  return job.total > 0 ? ` at step ${job.step}/${job.total}` : ''
}

/** The progress line while the connection is down. */
export function waitingText(job: FollowedJob): string {
  return `Connection lost${at(job)} — waiting for Atelier to come back…`
}

/**
 * The message for a followed job that `generate:active` no longer lists, from its record in `jobs:list`
 * (kept for an hour after it ends) or its absence (Atelier restarted: the job no longer exists).
 */
export function lostJobMessage(
  job: FollowedJob,
  record: Pick<JobInfo, 'state' | 'message'> | undefined,
): { kind: 'error' | 'info'; text: string } {
  switch (record?.state) {
    case 'done':
      return {
        kind: 'info',
        text: 'This generation finished while the connection was down; its images are in the Gallery.',
      }
    case 'cancelled':
      return { kind: 'info', text: 'This generation was cancelled while the connection was down.' }
    case 'failed':
      return {
        kind: 'error',
        text: `This generation failed while the connection was down${record.message ? `: ${record.message}` : '.'}`,
      }
    case 'queued':
    case 'running':
      return {
        kind: 'info',
        text: 'This generation is still running in Atelier but can no longer be followed here; its images will be in the Gallery.',
      }
    default:
      return {
        kind: 'error',
        text:
          `Interrupted: Atelier restarted during this generation${at(job)}, so the job no longer exists and ` +
          'nothing was saved from it. Its settings are still in the panel: press Generate to run it again.',
      }
  }
}
