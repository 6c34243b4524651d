import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import {
  byteAlphabet,
  BytePairEncoder,
  bytesToUnicode,
  cleanText,
  CLIP_PATTERN,
  END_OF_WORD,
  END_TOKEN,
  START_TOKEN,
} from './bpe'

export const CLIP_BOS = 49406
export const CLIP_EOS = 49407
export const CLIP_MAX_LENGTH = 77
/** Merges simple_tokenizer.py keeps from the BPE file: lines[1 : 49152 - 256 - 2 + 1]. */
export const CLIP_MERGE_COUNT = 49152 - 256 - 2

export class TokenizerError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'TokenizerError'
  }
}

export interface PaddedIds {
  ids: Int32Array
  /** The prompt had more BPE tokens than fit (maxLength - 2); the rest were dropped. */
  truncated: boolean
}

type Merge = readonly [string, string]

function parseMerges(lines: string[], source: string): Merge[] {
  return lines.map((line, i) => {
    const parts = line.split(/\s+/).filter(Boolean)
    if (parts.length !== 2)
      throw new TokenizerError(`${source}: merge line ${i + 2} is not two symbols: "${line}"`, 'bad-merges')
    return [parts[0]!, parts[1]!] as const
  })
}

/** OpenAI CLIP's byte-level BPE tokenizer (simple_tokenizer.py), as Stable Diffusion uses it. */
export class ClipTokenizer {
  readonly bos: number
  readonly eos: number
  private readonly bpe: BytePairEncoder
  private readonly byteEncoder = bytesToUnicode()
  private readonly byteDecoder: Map<string, number>
  private readonly decoder: Map<number, string>

  constructor(
    private readonly encoder: ReadonlyMap<string, number>,
    merges: readonly Merge[],
    /** Where the vocabulary came from (a folder or a .gz file). */
    readonly source: string,
  ) {
    const bos = encoder.get(START_TOKEN)
    const eos = encoder.get(END_TOKEN)
    if (bos === undefined || eos === undefined) {
      throw new TokenizerError(`${source}: the vocabulary has no ${START_TOKEN} / ${END_TOKEN}`, 'bad-vocab')
    }
    this.bos = bos
    this.eos = eos
    this.bpe = new BytePairEncoder(merges)
    this.byteDecoder = new Map(this.byteEncoder.map((ch, b) => [ch, b]))
    this.decoder = new Map([...encoder].map(([tok, id]) => [id, tok]))
  }

  get vocabSize(): number {
    return this.encoder.size
  }

  /** Build from OpenAI's `bpe_simple_vocab_16e6.txt.gz` exactly as SimpleTokenizer.__init__ does. */
  static async fromBpeGz(file: string): Promise<ClipTokenizer> {
    let text: string
    try {
      text = gunzipSync(await readFile(file)).toString('utf8')
    } catch (err) {
      throw new TokenizerError(
        `${file}: cannot read the BPE merges (${(err as Error).message})`,
        'bad-merges',
      )
    }
    const merges = parseMerges(text.split('\n').slice(1, CLIP_MERGE_COUNT + 1), file)
    if (merges.length !== CLIP_MERGE_COUNT) {
      throw new TokenizerError(
        `${file}: expected ${CLIP_MERGE_COUNT} merges, found ${merges.length}`,
        'bad-merges',
      )
    }
    const alphabet = byteAlphabet()
    const vocab = [...alphabet, ...alphabet.map((c) => c + END_OF_WORD), ...merges.map(([a, b]) => a + b)]
    vocab.push(START_TOKEN, END_TOKEN)
    return new ClipTokenizer(new Map(vocab.map((tok, i) => [tok, i])), merges, file)
  }

  /** Build from a Hugging Face tokenizer folder (`vocab.json` + `merges.txt`). */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const vocabFile = path.join(dir, 'vocab.json')
    const mergesFile = path.join(dir, 'merges.txt')
    let vocab: unknown
    let mergesText: string
    try {
      vocab = JSON.parse(await readFile(vocabFile, 'utf8'))
      mergesText = await readFile(mergesFile, 'utf8')
    } catch (err) {
      throw new TokenizerError(
        `${dir}: cannot read vocab.json / merges.txt (${(err as Error).message})`,
        'bad-vocab',
      )
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
      throw new TokenizerError(`${vocabFile}: expected a JSON object of token -> id`, 'bad-vocab')
    }
    const entries = Object.entries(vocab)
    if (!entries.every(([, id]) => Number.isInteger(id))) {
      throw new TokenizerError(`${vocabFile}: every id must be an integer`, 'bad-vocab')
    }
    let lines = mergesText.split('\n').filter((l) => l.trim() !== '')
    if (lines[0]?.startsWith('#version')) lines = lines.slice(1)
    lines = lines.slice(0, CLIP_MERGE_COUNT)
    return new ClipTokenizer(new Map(entries as [string, number][]), parseMerges(lines, mergesFile), dir)
  }

  /** BPE ids of a prompt, without BOS/EOS (SimpleTokenizer.encode). */
  encode(text: string): number[] {
    const ids: number[] = []
    for (const match of cleanText(text).matchAll(CLIP_PATTERN)) {
      let token = ''
      for (const b of Buffer.from(match[0], 'utf8')) token += this.byteEncoder[b]
      for (const piece of this.bpe.encodeWord(token)) {
        const id = this.encoder.get(piece)
        if (id === undefined)
          throw new TokenizerError(`${this.source}: "${piece}" is not in the vocabulary`, 'bad-vocab')
        ids.push(id)
      }
    }
    return ids
  }

  /** [BOS, first maxLength-2 ids, EOS] padded to maxLength (SD 1.x pads with EOS; SDXL's second tokenizer with 0). */
  encodePadded(text: string, opts: { maxLength?: number; padToken?: number } = {}): PaddedIds {
    const maxLength = opts.maxLength ?? CLIP_MAX_LENGTH
    const pad = opts.padToken ?? this.eos
    const bpe = this.encode(text)
    const keep = bpe.slice(0, Math.max(0, maxLength - 2))
    const ids = new Int32Array(maxLength).fill(pad)
    ids[0] = this.bos
    ids.set(keep, 1)
    ids[keep.length + 1] = this.eos
    return { ids, truncated: bpe.length > keep.length }
  }

  /** Text of ids (SimpleTokenizer.decode): `</w>` becomes a space; bad UTF-8 becomes U+FFFD. */
  decode(ids: Iterable<number>): string {
    let text = ''
    for (const id of ids) {
      const tok = this.decoder.get(id)
      if (tok === undefined)
        throw new TokenizerError(`${this.source}: id ${id} is not in the vocabulary`, 'bad-id')
      text += tok
    }
    const bytes: number[] = []
    for (const ch of text) {
      const b = this.byteDecoder.get(ch)
      if (b === undefined) throw new TokenizerError(`${this.source}: "${ch}" is not a byte symbol`, 'bad-id')
      bytes.push(b)
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes)).replaceAll(END_OF_WORD, ' ')
  }
}
