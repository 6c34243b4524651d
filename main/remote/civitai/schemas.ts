/**
 * Zod schemas for the Civitai REST responses we read (shared/docs/remote-apis.md A.1-A.9). Lenient on purpose:
 * every field the docs call nullable or optional is `nullish`, enums are open strings, unknown keys are
 * dropped, and list items are validated one by one so a single odd model does not sink a page.
 */
import { z } from 'zod'

const str = z.string().nullish()
const num = z.number().nullish()

export const civitaiFileSchema = z.object({
  id: z.number(),
  name: z.string(),
  sizeKB: num,
  type: str,
  metadata: z.object({ format: str, size: str, fp: str, quantType: str }).partial().nullish(),
  hashes: z.record(z.string(), z.string().nullish()).nullish(),
  pickleScanResult: str,
  pickleScanMessage: str,
  virusScanResult: str,
  virusScanMessage: str,
  primary: z.boolean().nullish(),
  downloadUrl: str,
})

export const civitaiImageSchema = z.object({
  id: num,
  url: z.string(),
  width: num,
  height: num,
  // number bitmask on /models*, legacy string ("None" | "Soft" | ...) on /images.
  nsfwLevel: z.union([z.number(), z.string()]).nullish(),
  browsingLevel: num,
  type: str,
  hash: str,
  meta: z.record(z.string(), z.unknown()).nullish(),
})

const statsSchema = z
  .object({ downloadCount: num, thumbsUpCount: num, rating: num, favoriteCount: num })
  .partial()
  .nullish()

export const civitaiVersionSchema = z.object({
  id: z.number(),
  modelId: num,
  name: z.string(),
  description: str,
  baseModel: str,
  baseModelType: str,
  publishedAt: str,
  createdAt: str,
  availability: str,
  trainedWords: z.array(z.string()).nullish(),
  earlyAccessDeadline: str,
  earlyAccessEndsAt: str,
  paidAccess: z.object({ permanent: z.boolean().nullish(), endsAt: str }).nullish(),
  stats: statsSchema,
  files: z.array(civitaiFileSchema).nullish(),
  images: z.array(civitaiImageSchema).nullish(),
  downloadUrl: str,
  air: str,
  model: z.object({ name: z.string(), type: str, nsfw: z.boolean().nullish(), mode: str }).nullish(),
})

export const civitaiModelSchema = z.object({
  id: z.number(),
  name: z.string(),
  description: str,
  type: str,
  nsfw: z.boolean().nullish(),
  nsfwLevel: num,
  mode: str,
  tags: z.array(z.union([z.string(), z.object({ name: z.string() })])).nullish(),
  creator: z.object({ username: str, image: str }).nullish(),
  stats: statsSchema,
  baseModels: z.array(z.string()).nullish(),
  // A Postgres array literal "{Image,Rent}" today, a JSON array in 2023-2024 responses.
  allowCommercialUse: z.union([z.string(), z.array(z.string())]).nullish(),
  modelVersions: z.array(civitaiVersionSchema).nullish(),
})

export const civitaiListSchema = z.object({
  items: z.array(z.unknown()),
  metadata: z
    .object({
      nextCursor: z.union([z.string(), z.number()]).nullish(),
      nextPage: str,
      currentPage: num,
      pageSize: num,
    })
    .partial()
    .nullish(),
})

export const civitaiEnumsSchema = z.object({
  ModelType: z.array(z.string()).nullish(),
  ModelFileType: z.array(z.string()).nullish(),
  ActiveBaseModel: z.array(z.string()).nullish(),
  BaseModel: z.array(z.string()).nullish(),
  BaseModelType: z.array(z.string()).nullish(),
})

export type CivitaiFile = z.infer<typeof civitaiFileSchema>
export type CivitaiImage = z.infer<typeof civitaiImageSchema>
export type CivitaiVersion = z.infer<typeof civitaiVersionSchema>
export type CivitaiModel = z.infer<typeof civitaiModelSchema>
