import { StoreError } from './storeError';

/**
 * Counts the database cursors this process holds open. A cursor left open by a
 * request that went away keeps a server resource (on FerretDB, one of its ~100
 * backend connections) until the process restarts, so every cursor is taken
 * from here and given back exactly once, and there is a ceiling.
 */
export class CursorBudget {
  private open = 0;

  constructor(
    private readonly max: number,
    private readonly onChange: (open: number) => void = () => undefined,
  ) {}

  get inUse(): number {
    return this.open;
  }

  /** Takes a slot or throws StoreError('busy'); the returned function gives it back (idempotent). */
  take(): () => void {
    if (this.open >= this.max) {
      throw new StoreError('busy', `too many reads in progress (MAX_OPEN_CURSORS=${this.max}), try again shortly`);
    }
    this.onChange(++this.open);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.onChange(--this.open);
    };
  }
}
