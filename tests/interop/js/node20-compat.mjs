// Node 20 lacks Promise.withResolvers (ES2024, Node >= 22), which current js-libp2p and its helpers
// (it-queue, mortice, abort-error, yamux) call. This is the spec's definition; imported before libp2p.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
