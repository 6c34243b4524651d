import { useCallback } from 'react'
import type { LoadedImage } from '../../canvas-kit/image-io'
import { GenerationPanel } from './GenerationPanel'
import { ResizeOffer } from './ResizeOffer'
import { ImageDrop } from './ImageDrop'
import type { ModeInputs } from './params'
import { ResultsView } from './ResultsView'
import { useStore } from './store'
import { StrengthControl } from './StrengthControl'
import { setInput, studio } from './studio-state'
import { SdUpscaleOptions } from '../upscale/UpscaleOptions'

export function Img2imgPage(): React.JSX.Element {
  const input = useStore(studio, (s) => s.inputs.img2img)
  const onImage = useCallback((img: LoadedImage) => setInput('img2img', img), [])
  const inputs = useCallback(
    async (): Promise<ModeInputs> => ({
      image: input?.bytes,
      imageWidth: input?.width,
      imageHeight: input?.height,
    }),
    [input],
  )

  return (
    <section className="studio img2img">
      <div className="studio-main two-up">
        <ResizeOffer tab="img2img" />
        <ImageDrop image={input} onImage={onImage} label="Input image" />
        <ResultsView tab="img2img" />
      </div>
      <GenerationPanel mode="img2img" inputs={inputs} imageSize={input}>
        <StrengthControl />
        <SdUpscaleOptions />
      </GenerationPanel>
    </section>
  )
}
