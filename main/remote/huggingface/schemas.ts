/** Zod schemas for the Hugging Face Hub JSON we read (shared/docs/remote-apis.md B.1-B.4). Lenient. */
import { z } from 'zod'

const str = z.string().nullish()

export const hfSiblingSchema = z.object({
  rfilename: z.string(),
  size: z.number().nullish(),
  blobId: str,
  // model-info `blobs=true` names the LFS hash `sha256`; the tree API names it `oid`.
  lfs: z.object({ size: z.number().nullish(), sha256: str, oid: str }).nullish(),
})

export const hfModelSchema = z.object({
  _id: str,
  id: z.string(),
  modelId: str,
  author: str,
  sha: str,
  lastModified: str,
  createdAt: str,
  private: z.boolean().nullish(),
  gated: z.union([z.boolean(), z.string()]).nullish(),
  disabled: z.boolean().nullish(),
  downloads: z.number().nullish(),
  likes: z.number().nullish(),
  library_name: str,
  pipeline_tag: str,
  tags: z.array(z.string()).nullish(),
  siblings: z.array(hfSiblingSchema).nullish(),
  cardData: z.record(z.string(), z.unknown()).nullish(),
  config: z.record(z.string(), z.unknown()).nullish(),
})

export const hfTreeEntrySchema = z.object({
  type: z.string(),
  oid: str,
  size: z.number().nullish(),
  path: z.string(),
  lfs: z.object({ oid: z.string(), size: z.number().nullish(), pointerSize: z.number().nullish() }).nullish(),
  xetHash: str,
})

export type HfModel = z.infer<typeof hfModelSchema>
export type HfSibling = z.infer<typeof hfSiblingSchema>
export type HfTreeEntry = z.infer<typeof hfTreeEntrySchema>
