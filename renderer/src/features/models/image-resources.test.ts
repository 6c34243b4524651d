import { describe, expect, it } from 'vitest'
import type { LibraryModel, PreviewResource } from '../../../../preload/contract'
import { samplerAndSchedule } from '../studio/params'
import { findInstalled, matchResources, resourceLabel, withoutLoraTags } from './image-resources'

function model(p: Partial<LibraryModel>): LibraryModel {
  return {
    id: 'id',
    name: 'x',
    fileName: 'x.safetensors',
    type: 'lora',
    sha256: null,
    autoV2: null,
    civitai: null,
    problem: null,
    ...p,
  } as LibraryModel
}
const res = (p: Partial<PreviewResource>): PreviewResource => ({
  kind: 'lora',
  name: null,
  weight: 1,
  modelVersionId: null,
  hash: null,
  ...p,
})

const lib = [
  model({ id: 'l1', name: 'add_detail', sha256: '7c6bad76eb54' + '0'.repeat(52), autoV2: '7C6BAD76EB' }),
  model({
    id: 'l2',
    name: 'renamed',
    civitai: { modelId: 1, versionId: 249861, modelName: null, versionName: null, modelType: 'LORA' },
  }),
  model({ id: 'c1', name: 'dreamshaper_8', type: 'checkpoint', autoV2: '879DB523C3' }),
  model({ id: 'v1', name: 'vae-ft-mse-840000-ema-pruned', type: 'vae' }),
  model({ id: 'bad', name: 'broken', problem: 'missing' }),
]

describe('resources of a preview image against the library', () => {
  it('finds by Civitai version id, then hash (SHA-256 prefix or AutoV2), then name', () => {
    expect(findInstalled(res({ modelVersionId: 249861 }), lib)?.id).toBe('l2')
    expect(findInstalled(res({ name: 'other', hash: '7c6bad76eb54' }), lib)?.id).toBe('l1')
    expect(findInstalled(res({ kind: 'checkpoint', hash: '879db523c3' }), lib)?.id).toBe('c1')
    expect(findInstalled(res({ name: 'ADD_DETAIL.safetensors' }), lib)?.id).toBe('l1')
    expect(findInstalled(res({ kind: 'vae', name: 'vae-ft-mse-840000-ema-pruned' }), lib)?.id).toBe('v1')
  })
  it('never matches another type or a record with a problem, and lists what is missing', () => {
    expect(findInstalled(res({ name: 'dreamshaper_8' }), lib)).toBeUndefined()
    expect(findInstalled(res({ name: 'broken' }), lib)).toBeUndefined()
    const m = matchResources(
      [res({ name: 'add_detail' }), res({ modelVersionId: 5 }), res({ hash: 'abcdef0123' })],
      lib,
    )
    expect(m.map((x) => x.installed?.id ?? resourceLabel(x.resource))).toEqual([
      'l1',
      'Civitai version 5',
      'hash abcdef0123',
    ])
  })
  it('moves only the installed LoRAs out of the prompt', () => {
    expect(withoutLoraTags('a cat, <lora:add_detail:0.6>, <LyCo:missing:1> best', ['Add_Detail'])).toBe(
      'a cat, <LyCo:missing:1> best',
    )
  })
  it('splits old combined sampler names and takes the schedule type from the image', () => {
    expect(samplerAndSchedule('DPM++ 2M Karras')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras' })
    expect(samplerAndSchedule('DPM++ 2M', 'Karras')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras' })
    expect(samplerAndSchedule('DPM++ 2M SDE', 'exponential')).toEqual({
      sampler: 'DPM++ 2M SDE',
      scheduleType: 'Exponential',
    })
  })
})
