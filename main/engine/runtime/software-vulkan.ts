import fs from 'node:fs'
import path from 'node:path'

/**
 * The environment for a child process that should find a software Vulkan device (SwiftShader) for
 * onnxruntime's WebGPU provider, as the tests and bench/gpu.sh use it: VK_ICD_FILENAMES pointing at the
 * ICD that Debian's chromium package ships, and, where the system has no Vulkan loader, chromium's
 * libvulkan.so.1 on LD_LIBRARY_PATH. Only ever applied to a child's env, never to this process.
 * `ATELIER_VK_ICD` names another ICD file.
 */

const ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib64/chromium/vk_swiftshader_icd.json']
const LOADER_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib']

export type SoftwareVulkan = { env: NodeJS.ProcessEnv; icd: string } | { reason: string }

export function softwareVulkanEnv(base: NodeJS.ProcessEnv = process.env): SoftwareVulkan {
  if (process.platform !== 'linux') return { reason: `SwiftShader via chromium is set up on Linux only` }
  const icd = base.ATELIER_VK_ICD ?? ICDS.find((f) => fs.existsSync(f))
  if (!icd || !fs.existsSync(icd))
    return { reason: 'no SwiftShader Vulkan ICD (install Debian chromium, or set ATELIER_VK_ICD)' }
  const env: NodeJS.ProcessEnv = { ...base, VK_ICD_FILENAMES: icd }
  const systemLoader = LOADER_DIRS.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')))
  const bundled = path.join(path.dirname(icd), 'libvulkan.so.1')
  if (!systemLoader) {
    if (!fs.existsSync(bundled))
      return { reason: 'no Vulkan loader (libvulkan.so.1) next to the ICD or in the system' }
    env.LD_LIBRARY_PATH = [path.dirname(icd), base.LD_LIBRARY_PATH].filter(Boolean).join(':')
  }
  return { env, icd }
}

const LVP_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d']

/**
 * The environment for a child process that should find Mesa's lavapipe (software Vulkan with
 * `shaderFloat16`): the WebGPU adapter with `shader-f16` that runs the fp16 graphs where no GPU is present.
 * Dawn accepts lavapipe from Mesa 23 on (Mesa 22's lacks `shaderUniform*ArrayDynamicIndexing`); Debian
 * bookworm has it in bookworm-backports' `mesa-vulkan-drivers` (.ci/run installs it). Needs the system
 * Vulkan loader (`libvulkan1`, a dependency of that package). `ATELIER_VK_LVP_ICD` names another ICD file.
 */
export function lavapipeEnv(base: NodeJS.ProcessEnv = process.env): SoftwareVulkan {
  if (process.platform !== 'linux') return { reason: 'lavapipe is set up on Linux only' }
  const icd =
    base.ATELIER_VK_LVP_ICD ??
    LVP_DIRS.flatMap((d) => {
      try {
        return fs
          .readdirSync(d)
          .filter((f) => /^lvp_icd(\.[\w-]+)?\.json$/.test(f))
          .map((f) => path.join(d, f))
      } catch {
        return []
      }
    })[0]
  if (!icd || !fs.existsSync(icd))
    return {
      reason: "no lavapipe Vulkan ICD (install Mesa >= 23's mesa-vulkan-drivers, or set ATELIER_VK_LVP_ICD)",
    }
  if (!LOADER_DIRS.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1'))))
    return { reason: 'no system Vulkan loader (libvulkan.so.1) for lavapipe' }
  return { env: { ...base, VK_ICD_FILENAMES: icd }, icd }
}
