/** Display names of model family ids (ModelFamily in main/library/types.ts, Base in model-formats/probe). */
const FAMILY_LABELS: Readonly<Record<string, string>> = {
  'sd-1': 'SD 1.x',
  'sd-2': 'SD 2.x',
  sdxl: 'SDXL',
  'sd-3': 'SD 3.x',
  'flux-1': 'Flux.1',
  'flux-2': 'Flux.2',
  auraflow: 'AuraFlow',
  kolors: 'Kolors',
  other: 'another base',
}

const VARIANT_SUFFIX = { normal: '', inpaint: ' inpainting', depth: ' depth', refiner: ' refiner' } as const

export type FamilyVariant = keyof typeof VARIANT_SUFFIX

/**
 * Human name of a family: 'SD 1.x', 'SDXL refiner', 'SD 1.x inpainting'; an id without a label passes
 * through, a missing one is 'unknown base'. Shared by the probe, the library, the services and the
 * renderer so every screen and error names a family the same way.
 */
export function familyLabel(family: string | null | undefined, variant: FamilyVariant = 'normal'): string {
  const base = family ? (FAMILY_LABELS[family] ?? family) : 'unknown base'
  return base + VARIANT_SUFFIX[variant]
}
