export async function benchSuiteCommand(_argv: string[]): Promise<number> {
  throw new Error('not yet');
}
