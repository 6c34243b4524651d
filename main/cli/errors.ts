/** An expected failure: printed as `atelier: message` and exiting with exitCode (2: bad input). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
  }
}
