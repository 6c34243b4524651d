import { safeStorage } from 'electron'
import type { SecretBox } from '../services/secrets'

/**
 * Secrets encrypted with the OS keychain through Electron safeStorage. `earlier` reads values another box wrote
 * into the shared data folder (`atelier serve` and the CLI use the key file), so a key saved there works here too.
 */
export function safeStorageSecretBox(earlier?: SecretBox): SecretBox {
  return {
    kind: 'safe-storage',
    encrypt(plain) {
      if (!safeStorage.isEncryptionAvailable())
        throw new Error('The OS keychain is not available; cannot store secrets.')
      return `ss1:${safeStorage.encryptString(plain).toString('base64')}`
    },
    decrypt(text) {
      if (text.startsWith('ss1:')) return safeStorage.decryptString(Buffer.from(text.slice(4), 'base64'))
      if (earlier) return earlier.decrypt(text)
      throw new Error('The stored secret is not in a known format.')
    },
  }
}
