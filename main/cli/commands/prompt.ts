import type { Command } from 'commander'
import path from 'node:path'
import readline from 'node:readline'
import { a1111PairsLine, explainPrompt, formatBreakdown } from '../../services/prompt'
import { CliError } from '../errors'
import { withServices } from '../services'

interface PromptOptions {
  a1111Pairs?: boolean
  steps: string
  tokenizer?: string
  json?: boolean
  embeddings?: string[]
}

async function pairsFromStdin(): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of rl) {
    if (line.trim() === '') continue
    process.stdout.write(`${a1111PairsLine(line)}\n`)
  }
}

export function registerPrompt(program: Command): void {
  program
    .command('prompt')
    .description(
      'Show how a prompt is read: Midjourney flags, LoRA tags, AND sub-prompts, prompt edits per step, ' +
        'attention weights and 75-token chunks. With --a1111-pairs, read JSON strings (one per line) on stdin ' +
        "and print A1111's parse_prompt_attention result for each, as Python's json.dumps writes it",
    )
    .argument('[prompt]', 'the prompt (not with --a1111-pairs)')
    .option('--a1111-pairs', 'JSON lines in, [[text, weight], ...] lines out')
    .option('--steps <n>', 'sampling steps for prompt editing', '20')
    .option('--tokenizer <path>', 'CLIP tokenizer folder or BPE .gz (default: the data folder cache)')
    .option('--json', 'print the breakdown as JSON')
    .option(
      '--embeddings <dir>',
      "folder of textual-inversion embeddings whose names to recognise (repeatable; the library's always are)",
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .action(async (prompt: string | undefined, o: PromptOptions) => {
      if (o.a1111Pairs) {
        if (prompt !== undefined) throw new CliError('--a1111-pairs reads prompts from stdin, not arguments')
        await pairsFromStdin()
        return
      }
      if (prompt === undefined)
        throw new CliError('give a prompt (or --a1111-pairs with JSON lines on stdin)')
      const steps = Number(o.steps)
      if (!Number.isInteger(steps) || steps < 1) throw new CliError(`--steps: ${o.steps} is not a step count`)
      const b = await withServices({ embeddingDirs: (o.embeddings ?? []).map((d) => path.resolve(d)) }, (s) =>
        explainPrompt(s, prompt, { steps, ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}) }),
      )
      process.stdout.write(`${o.json ? JSON.stringify(b, null, 2) : formatBreakdown(b)}\n`)
    })
}
