import { describe, expect, it } from 'vitest'
import { generateRequestSchema } from '../../preload/contract'
import { describeIssue, fieldLabel, invalidInput } from './errors'

describe('validation messages written for people', () => {
  const issues = (req: unknown) => {
    const r = generateRequestSchema.safeParse(req)
    if (r.success) throw new Error('expected a failure')
    return r.error.issues
  }

  it('an 8000×8000 request and 800 steps: no channel names, no zod wording', () => {
    const e = invalidInput(
      issues({ mode: 'img2img', model: 'm', prompt: 'x', width: 8000, height: 8000, steps: 800 }),
    )
    expect(e.code).toBe('invalid-input')
    expect(e.message).toContain('Steps must be at most 500.')
    expect(e.message).toContain('Width must be at most 4096.')
    expect(e.message).not.toMatch(/Too big|expected number|generate:start|<=/)
    expect(e.issues?.find((i) => i.path === 'steps')?.message).toBe('Steps must be at most 500.')
  })

  it('labels nested and camelCase fields', () => {
    expect(fieldLabel(['cfgScale'])).toBe('CFG scale')
    expect(fieldLabel(['hires', 'width'])).toBe('Hires width')
    expect(fieldLabel(['loras', 0, 'weight'])).toBe('LoRA 1 weight')
    expect(
      describeIssue({ path: ['model'], code: 'too_small', origin: 'string', minimum: 1, message: '' }),
    ).toBe('Model cannot be empty.')
  })
})
