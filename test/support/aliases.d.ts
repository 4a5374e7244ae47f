// The tests run against two majors of Express and Koa, the older ones
// installed under aliases; their API is typed as the current major's.
declare module 'express4' {
  import express from 'express';
  export = express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export = Koa;
}
