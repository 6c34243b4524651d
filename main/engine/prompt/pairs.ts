import { parseA1111PairsTyped, PromptWeightError } from './attention'
import { pyJsonDumps } from './py-json'

/**
 * One line of `atelier prompt --a1111-pairs`: the input line is a JSON string; the output is
 * `json.dumps(parse_prompt_attention(s))` as Python prints it. Where upstream raises (a weight float() refuses),
 * the line is `{"error": "ValueError: ..."}`; input that is not a JSON string gives `{"error": "..."}` too.
 */
export function a1111PairsLine(line: string): string {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    return errorLine(`input is not JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (typeof value !== 'string') return errorLine('input is not a JSON string')
  try {
    return pyJsonDumps(parseA1111PairsTyped(value).map((p) => [p.text, p.int ? { int: p.weight } : p.weight]))
  } catch (err) {
    if (err instanceof PromptWeightError) return errorLine(`ValueError: ${err.message}`)
    throw err
  }
}

function errorLine(message: string): string {
  return `{"error": ${pyJsonDumps(message)}}`
}
