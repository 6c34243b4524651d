import { describe, expect, it } from 'vitest'
import { healthOf } from './health'

describe('library health badge', () => {
  it('a hash mismatch found by "Check files" is Damaged, like an unreadable file', () => {
    expect(healthOf({ problem: null, verified: 'mismatch' })).toBe('damaged')
    expect(healthOf({ problem: 'truncated header', verified: 'verified' })).toBe('damaged')
    expect(healthOf({ problem: null, verified: 'verified' })).toBe('verified')
    expect(healthOf({ problem: null, verified: 'unverified' })).toBe('unverified')
  })
})
