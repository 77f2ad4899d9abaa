/**
 * A gate for staging an interleaving: `reached` resolves when something waits at it (`pass`),
 * which waits until `release`.
 */
export function gate() {
  let arrive = () => {};
  let release = () => {};
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const pass = async () => {
    arrive();
    await released;
  };
  return { reached, release, pass };
}

export type Gate = ReturnType<typeof gate>;
