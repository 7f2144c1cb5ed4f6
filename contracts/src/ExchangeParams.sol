// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title The exchange parameters decided by DPG governance
/// @notice Owned by the governance timelock. Each call records one decision as an event with a
/// change id that grows by one per decision (1, 2, 3, ...), so the exchange applies each decision
/// exactly once and in order, and notices a gap. Units are the engine's: fee rates in parts per
/// million of the amount received (dpg.core.model.PPM, each < 1,000,000), tick size in quote base
/// units per whole base unit, lot size in base units, minimum notional in quote base units; the
/// stakers' share of trading fees in basis points (as Staking.feeShareBps). Symbols are ASCII,
/// left-aligned in a bytes32 and zero-padded (a market as "BTC/USDT", an asset as "BTC"). The
/// engine checks what only it can (asset decimals, tick x lot being whole quote units) and
/// refuses a listing it cannot accept.
contract ExchangeParams is Ownable {
    uint32 public constant PPM = 1_000_000;
    uint32 public constant MAX_BPS = 10_000;

    /// The id of the last decision recorded (0 before any).
    uint64 public lastChangeId;

    event FeesSet(uint64 indexed changeId, bytes32 indexed market, uint32 makerFeePpm, uint32 takerFeePpm);
    event StakerShareSet(uint64 indexed changeId, uint32 shareBps);
    event MarketListed(
        uint64 indexed changeId,
        bytes32 indexed market,
        bytes32 base,
        bytes32 quote,
        uint128 tickSize,
        uint128 lotSize,
        uint128 minNotional,
        uint32 makerFeePpm,
        uint32 takerFeePpm
    );
    event MarketHalted(uint64 indexed changeId, bytes32 indexed market);
    event MarketResumed(uint64 indexed changeId, bytes32 indexed market);

    error InvalidFee(uint32 ppm);
    error InvalidShare(uint32 bps);
    error InvalidSymbol();
    error InvalidMarket();

    constructor(address owner_) Ownable(owner_) {}

    function setFees(bytes32 market, uint32 makerFeePpm, uint32 takerFeePpm) external onlyOwner {
        _checkSymbol(market);
        _checkFees(makerFeePpm, takerFeePpm);
        emit FeesSet(_next(), market, makerFeePpm, takerFeePpm);
    }

    function setStakerShare(uint32 shareBps) external onlyOwner {
        if (shareBps > MAX_BPS) revert InvalidShare(shareBps);
        emit StakerShareSet(_next(), shareBps);
    }

    function listMarket(
        bytes32 market,
        bytes32 base,
        bytes32 quote,
        uint128 tickSize,
        uint128 lotSize,
        uint128 minNotional,
        uint32 makerFeePpm,
        uint32 takerFeePpm
    ) external onlyOwner {
        _checkSymbol(market);
        _checkSymbol(base);
        _checkSymbol(quote);
        if (base == quote || tickSize == 0 || lotSize == 0) revert InvalidMarket();
        _checkFees(makerFeePpm, takerFeePpm);
        emit MarketListed(_next(), market, base, quote, tickSize, lotSize, minNotional, makerFeePpm, takerFeePpm);
    }

    function haltMarket(bytes32 market) external onlyOwner {
        _checkSymbol(market);
        emit MarketHalted(_next(), market);
    }

    function resumeMarket(bytes32 market) external onlyOwner {
        _checkSymbol(market);
        emit MarketResumed(_next(), market);
    }

    function _next() internal returns (uint64) {
        return ++lastChangeId;
    }

    function _checkFees(uint32 makerFeePpm, uint32 takerFeePpm) internal pure {
        if (makerFeePpm >= PPM) revert InvalidFee(makerFeePpm);
        if (takerFeePpm >= PPM) revert InvalidFee(takerFeePpm);
    }

    function _checkSymbol(bytes32 symbol) internal pure {
        if (symbol == bytes32(0)) revert InvalidSymbol();
    }
}
