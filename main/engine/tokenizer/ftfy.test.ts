import { describe, expect, it } from 'vitest'
import { cleanText } from './bpe'
import { fixMojibake, ftfyFixText } from './ftfy'

// Expected values follow ftfy's documentation and docstrings (fix_text, fixes.*).
describe('ftfyFixText (ftfy.fix_text defaults)', () => {
  it.each([
    [
      'curly quotes',
      '\u201chello\u201d \u2018world\u2019 \u201avia\u201b \u02bcx',
      "\"hello\" 'world' 'via' 'x",
    ],
    ['full-width forms', 'ＬＯＵＤ　ＮＯＩＳＥＳ １２３！', 'LOUD NOISES 123!'],
    ['half-width katakana', 'ｶﾀｶﾅ', 'カタカナ'],
    ['Latin ligatures', 'ﬂuﬃest ﬁsh ĳssel ǆ', 'fluffiest fish ijssel dž'],
    ['NFC', 'cafe\u0301', 'café'],
    ['C1 controls as Windows-1252', 'a\u0080b\u0093c\u0094', 'a€b"c"'],
    ['control characters', 'a\u0000b\u0007c\ufeffd\u200b\u206ae', 'abcd\u200be'],
    ['terminal escapes', '\u001b[36;44mI am blue\u001b[0m', 'I am blue'],
    ['line breaks', 'a\r\nb\rc\u2028d\u2029e', 'a\nb\nc\nd\ne'],
    ['U+0085 is a C1 control first (Windows-1252 …)', 'a\u0085b', 'a\u2026b'],
    ['lone surrogates', 'a\ud800b', 'a\ufffdb'],
    ['HTML entities', 'Ten &lt;&gt; &EACUTE;cole &#233; &amp;amp;', 'Ten <> École é &'],
    ['no HTML unescaping in a line with <', '<b>&lt;</b>', '<b>&lt;</b>'],
    ['... nor after it', '<p>\n&amp;', '<p>\n&amp;'],
    ['mojibake', 'cafÃ© â€œquotedâ€\u009d donâ€™t', 'café "quoted" don\'t'],
    [
      'plain text unchanged',
      'masterpiece, (best quality:1.2), 1girl',
      'masterpiece, (best quality:1.2), 1girl',
    ],
    ['non-Latin text unchanged', '中文提示词 Ελληνικά Русский ß æ Ø', '中文提示词 Ελληνικά Русский ß æ Ø'],
  ])('%s', (_what, input, output) => {
    expect(ftfyFixText(input)).toBe(output)
  })

  it('mojibake needs the whole line to round-trip; real Latin-1 words stay', () => {
    expect(fixMojibake('SÃO PAULO')).toBe('SÃO PAULO')
    expect(fixMojibake('Ã© ✓')).toBe('Ã© ✓')
  })

  it('runs before the tokenizer’s html.unescape and lower-casing', () => {
    expect(cleanText('  ＡＢＣ “x” ﬁne  ')).toBe('abc "x" fine')
  })
})
