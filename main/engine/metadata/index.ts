export * from './infotext'
export * from './invokeai'
export * from './png'
export * from './png-chunks'
