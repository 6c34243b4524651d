export type {
  BetaSchedule,
  NoiseFn,
  PredictionType,
  Scheduler,
  SchedulerConfig,
  TimestepSpacing,
} from './types'
export { SD15_SCHEDULER_CONFIG, parseSchedulerConfig } from './config'
export { createScheduler, nameForOracleKey, oracleKeyFor, schedulerInfo, schedulerNames } from './registry'
export { DDIMScheduler } from './ddim'
export { DPMSolverMultistepScheduler } from './dpm-solver'
export { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler'
export { LMSDiscreteScheduler } from './lms'
export { LCMScheduler, TCDScheduler, consistencyTimesteps, lcmScalings } from './lcm-tcd'
export { PNDMScheduler } from './pndm'
