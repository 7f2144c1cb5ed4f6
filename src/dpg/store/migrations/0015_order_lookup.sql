-- An order found by id and by client id when the API's memory no longer holds it (finished before
-- a restart, or long ago): the orders projection answers, with the order's fills from trades.
-- Rows written before this migration keep stop_price 0 and triggered true until the projections
-- are rebuilt from the journal (`dpg projections rebuild`).
ALTER TABLE orders ADD COLUMN stop_price numeric NOT NULL DEFAULT 0;  -- quote units; stop orders only
ALTER TABLE orders ADD COLUMN triggered  boolean NOT NULL DEFAULT true; -- false while a stop order waits
CREATE INDEX orders_client_id ON orders (account, client_id) WHERE client_id <> '';
CREATE INDEX trades_taker_order ON trades (taker_order);
CREATE INDEX trades_maker_order ON trades (maker_order);
