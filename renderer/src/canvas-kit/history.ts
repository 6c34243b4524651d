/**
 * An undo/redo list of operations. The mask canvas replays `done` from a blank state after undo, so
 * operations are plain data (stroke points, invert, clear, uploaded mask), never pixel snapshots: a
 * 2048² snapshot would cost 16 MiB per step.
 */
export class History<Op> {
  private done: Op[] = []
  private undone: Op[] = []

  constructor(private readonly limit = 500) {}

  push(op: Op): void {
    this.done.push(op)
    if (this.done.length > this.limit) this.done.shift()
    this.undone = []
  }

  /** The operation taken back, or undefined when there is nothing to undo. */
  undo(): Op | undefined {
    const op = this.done.pop()
    if (op !== undefined) this.undone.push(op)
    return op
  }

  redo(): Op | undefined {
    const op = this.undone.pop()
    if (op !== undefined) this.done.push(op)
    return op
  }

  get ops(): readonly Op[] {
    return this.done
  }

  get canUndo(): boolean {
    return this.done.length > 0
  }

  get canRedo(): boolean {
    return this.undone.length > 0
  }

  reset(): void {
    this.done = []
    this.undone = []
  }
}
