/**
 * Failures Node and Fastify answer before a request reaches Seed's handlers: unparseable HTTP,
 * oversized headers, a client too slow to send its request, an undecodable URL. Their default
 * answers are Fastify's own JSON shape; these write the OpenAI-format body every client of
 * Seed expects, with the one status of its code.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SeedError } from '../../errors.ts';

function clientErrorOf(code: string | undefined): SeedError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new SeedError('invalid_request', 'The request headers are larger than this gateway accepts.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new SeedError('invalid_request', 'The request was not received in time; the connection is closed.');
    default:
      return new SeedError('invalid_request', 'The request is not valid HTTP.');
  }
}

/** Fastify's `clientErrorHandler`: answers on the raw socket, then closes it. */
export function handleClientError(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has no one left to answer (Node's own handler does the same).
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const seedError = clientErrorOf(error.code);
  const body = JSON.stringify(seedError.toBody());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${seedError.status} ${STATUS_CODES[seedError.status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Fastify's `frameworkErrors`: a URL that cannot be decoded, a path parameter too long. */
export function frameworkErrorHandler(idHeaders: (request: FastifyRequest) => Record<string, string>) {
  return (error: Error, request: FastifyRequest, reply: FastifyReply): void => {
    const seedError = new SeedError('invalid_request', `The request URL cannot be read: ${error.message}`);
    void reply.status(seedError.status).headers(idHeaders(request)).send(seedError.toBody());
  };
}
