/** Model probing (format, family, architecture) from headers and configs; see probe/ for the matchers. */
export * from './probe/index'
