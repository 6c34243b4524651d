export const SECTIONS = [
  {
    id: 'create',
    label: 'Create',
    hint: 'Text to image: a prompt (Midjourney syntax works), a grid of four, U/V',
  },
  { id: 'models', label: 'Models', hint: 'Browse Civitai and Hugging Face, downloads, your library' },
  { id: 'img2img', label: 'Img2img', hint: 'Restyle a photo with denoising strength' },
  { id: 'inpaint', label: 'Inpaint', hint: 'Paint a mask and repaint part of an image' },
  { id: 'outpaint', label: 'Outpaint', hint: 'Extend an image beyond its borders' },
  { id: 'gallery', label: 'Gallery', hint: 'Every output with its parameters' },
  { id: 'settings', label: 'Settings', hint: 'Keys, folders, preferences' },
] as const

export type SectionId = (typeof SECTIONS)[number]['id']

export function sectionFromHash(hash: string): SectionId {
  // The first segment names the section: `#/models/view/civitai/1` is the Models section's model page.
  const id = hash.replace(/^#\/?/, '').split(/[/?]/)[0] ?? ''
  return SECTIONS.some((s) => s.id === id) ? (id as SectionId) : 'create'
}
