export async function runCommand(_argv: string[]): Promise<number> { throw new Error('run: not written yet'); }
