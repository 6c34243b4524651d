import { describe, expect, it } from 'vitest'
import { executionProviderInfo } from './engine-info'

describe('executionProviderInfo (the status bar provider)', () => {
  it('names the preference until a generation opened sessions, then the provider that opened', () => {
    expect(executionProviderInfo('auto')).toMatchObject({ name: 'auto', opened: false, preference: 'auto' })
    expect(executionProviderInfo('auto', { preference: 'auto', provider: 'webgpu' })).toMatchObject({
      name: 'webgpu',
      opened: true,
    })
    const fell = executionProviderInfo('webgpu', {
      preference: 'webgpu',
      provider: 'cpu',
      fallbackReason: 'webgpu: Failed to get a WebGPU adapter',
    })
    expect(fell).toMatchObject({
      name: 'cpu',
      opened: true,
      fallbackReason: 'webgpu: Failed to get a WebGPU adapter',
    })
    // The status bar also says what the UNet computed in.
    expect(
      executionProviderInfo('cuda', { preference: 'cuda', provider: 'cuda', compute: 'fp16' }),
    ).toMatchObject({ name: 'cuda', compute: 'fp16' })
    expect(executionProviderInfo('cpu', { preference: 'cpu', provider: 'cpu' }).compute).toBeUndefined()
    // A state from another preference is stale: the next generation uses the new one.
    expect(executionProviderInfo('cpu', { preference: 'auto', provider: 'webgpu' })).toMatchObject({
      name: 'cpu',
      opened: false,
    })
  })
})
