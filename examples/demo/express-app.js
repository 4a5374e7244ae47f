// /legacy: an Express app as it already exists, mounted by the config.
// wait-for-body has read the body before it runs; express.json() parses it
// from the replayed stream.
import express from 'express';

const app = express();
app.use(express.json());
app.get('/hello', (req, res) => {
  res.json({ hello: req.query.name ?? 'world', from: 'express', mountedAt: req.baseUrl || '/legacy' });
});
app.post('/echo', (req, res) => {
  res.json({ received: req.body });
});
export default app;
