// Getting a GPUDevice: navigator.gpu in browsers, Dawn's Node bindings (the `webgpu` package) in Node.
// One device per process is shared by sessions; when it is lost the next session gets a fresh one.

export interface GpuContext {
  /** Held while sessions use the device: Dawn's Node binding shuts down when its GPU object is collected. */
  gpu: GPU;
  device: GPUDevice;
  adapterName: string;
  f16: boolean;
  subgroups: boolean;
  timestamps: boolean;
  /** A compatibility-mode device (Dawn's OpenGL ES backend): lower limits, fewer features. */
  compat: boolean;
  /** The adapter is a CPU rasteriser (lavapipe, SwiftShader, llvmpipe): kernel choices differ there. */
  software: boolean;
}

export class GpuUnavailableError extends Error {}

let current: Promise<GpuContext> | undefined;
const env = (k: string) => (typeof process === 'undefined' ? undefined : process.env[k]);

async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  try {
    // A variable specifier keeps browser bundlers from pulling in the Node-only package.
    const pkg = 'webgpu';
    const { create, globals } = (await import(pkg)) as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    const backend = env('LASTMILE_DAWN_BACKEND');
    // Dawn's OpenGL ES backend goes through EGL; with no display server Mesa needs the surfaceless platform.
    if (backend === 'opengles' && !env('EGL_PLATFORM')) process.env.EGL_PLATFORM = 'surfaceless';
    const opts = backend ? [`backend=${backend}`] : [];
    return create(opts);
  } catch (e) {
    throw new GpuUnavailableError(`no WebGPU: navigator.gpu is missing and the 'webgpu' package could not load (${(e as Error).message})`);
  }
}

async function open(): Promise<GpuContext> {
  const gpu = await getGpu();
  const compat = env('LASTMILE_DAWN_BACKEND') === 'opengles';
  const adapter = await gpu.requestAdapter(compat ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions) : { powerPreference: 'high-performance' });
  if (!adapter) throw new GpuUnavailableError('no WebGPU adapter (on Linux without a GPU, install Mesa >= 24 for lavapipe: see README)');
  const wanted: GPUFeatureName[] = (['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  // Ask for the adapter's real limits: the defaults cap storage buffers at 128 MiB and 8 per stage.
  const limits: Record<string, number> = {};
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'] as const) {
    limits[k] = adapter.limits[k];
  }
  const device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits: limits });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const ctx: GpuContext = {
    gpu, device, adapterName: name, compat,
    f16: device.features.has('shader-f16'), subgroups: device.features.has('subgroups'), timestamps: device.features.has('timestamp-query'),
    software: /llvmpipe|lavapipe|swiftshader|software/i.test(name),
  };
  device.lost.then((l) => {
    if (current) current = undefined;
    if (l.reason !== 'destroyed') console.warn(`lastmile: WebGPU device lost (${l.reason}): ${l.message}; new sessions will request a new device`);
  });
  return ctx;
}

let users = 0;

/** The shared device; each acquire is matched by a releaseGpu when the session ends. */
export async function acquireGpu(): Promise<GpuContext> {
  if (!current) current = open().catch((e) => { current = undefined; throw e; });
  const ctx = await current;
  users++;
  return ctx;
}

/** When the last user is gone the device is destroyed and Dawn's GPU object dropped, so Node can exit. */
export function releaseGpu(ctx: GpuContext): void {
  if (--users > 0 || !current) return;
  current = undefined;
  ctx.device.destroy();
}
