import { describe, expect, it } from 'vitest'
import { sectionFromHash } from './sections'

describe('sectionFromHash', () => {
  it('reads the section from the first segment of the hash, sub-routes included', () => {
    expect(sectionFromHash('#/models/view/civitai/1001')).toBe('models')
    expect(sectionFromHash('#/models/browse?q=tiny')).toBe('models')
    expect(sectionFromHash('#/models?q=x')).toBe('models')
    expect(sectionFromHash('#/settings')).toBe('settings')
    expect(sectionFromHash('')).toBe('create')
    expect(sectionFromHash('#/nowhere')).toBe('create')
  })
})
