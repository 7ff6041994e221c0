import { TcpProxy } from './test/service/tcp-proxy';
import { spawnService } from './test/service/helpers';
(async () => {
  const proxy = TcpProxy.forUri(process.argv[2], 45998);
  await proxy.up();
  const svc = await spawnService({ MONGODB_URI: 'mongodb://127.0.0.1:45998/', MONGODB_SERVER_SELECTION_TIMEOUT_MS: '1500', LOG_LEVEL: 'debug' });
  console.log((await fetch(svc.url + '/data', {method:'POST', headers:{'content-type':'application/json'}, body:'{"a":1}'})).status);
  await proxy.down();
  console.log((await fetch(svc.url + '/data', {method:'POST', headers:{'content-type':'application/json'}, body:'{"a":1}'})).status);
  svc.kill(); await svc.exited; console.log(svc.logs.filter(l=>l.includes('error')).map(l=>l.slice(0,600)).join('\n'));
})();
