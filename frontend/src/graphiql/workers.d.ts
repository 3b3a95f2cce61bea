declare module 'monaco-editor/esm/vs/language/json/json.worker.js?worker' {
  const W: { new (): Worker };
  export default W;
}
declare module 'monaco-graphql/esm/graphql.worker.js?worker' {
  const W: { new (): Worker };
  export default W;
}
declare module 'monaco-editor/esm/vs/editor/editor.worker.js?worker' {
  const W: { new (): Worker };
  export default W;
}
