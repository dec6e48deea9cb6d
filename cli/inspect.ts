export async function inspectCommand(_argv: string[]): Promise<number> { throw new Error('inspect: not written yet'); }
