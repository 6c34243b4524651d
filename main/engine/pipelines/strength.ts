import type { Scheduler } from '../schedulers'

export interface StepPlan {
  /** Timesteps to run, in order (what the denoise loop iterates). */
  timesteps: Float64Array
  /** Length of the schedule they were cut from (setTimesteps argument). */
  scheduleLength: number
  /** UNet calls the loop will make. */
  stepsRun: number
}

/**
 * Timesteps for a denoising strength (img2img, inpaint). Default semantics follow diffusers:
 * `int(steps * strength)` steps of a `steps`-long schedule. With `exactSteps` (A1111's "do exactly the
 * amount of steps the slider specifies", ComfyUI's behaviour) the schedule is
 * `int(steps / min(strength, 0.999))` long and its last `steps` steps run. Leaves the scheduler set to
 * the schedule the timesteps come from.
 */
export function planSteps(
  scheduler: Scheduler,
  steps: number,
  strength: number,
  exactSteps = false,
): StepPlan {
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`steps must be a positive integer (got ${steps})`)
  if (!(strength > 0 && strength <= 1))
    throw new Error(`denoising strength must be greater than 0 and at most 1 (got ${strength})`)
  if (!exactSteps || strength >= 1) {
    const timesteps = scheduler.img2imgTimesteps(steps, strength)
    if (timesteps.length === 0)
      throw new Error(
        `strength ${strength} with ${steps} steps runs no step (int(steps x strength) = 0); raise either`,
      )
    return { timesteps, scheduleLength: steps, stepsRun: timesteps.length }
  }
  const maxLength = 1000
  const length = Math.min(Math.floor(steps / Math.min(strength, 0.999)), maxLength)
  const run = Math.min(steps, length)
  scheduler.setTimesteps(length)
  const timesteps = scheduler.timesteps.slice((length - run) * scheduler.order)
  return { timesteps, scheduleLength: length, stepsRun: timesteps.length }
}

/** Timesteps of a full schedule (txt2img, and inpaint at strength 1). */
export function fullSchedule(scheduler: Scheduler, steps: number): StepPlan {
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`steps must be a positive integer (got ${steps})`)
  scheduler.setTimesteps(steps)
  const timesteps = scheduler.timesteps.slice()
  return { timesteps, scheduleLength: steps, stepsRun: timesteps.length }
}
