// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title A Chainlink-interface price feed for the development chain and the tests
/// @notice Implements AggregatorV3Interface (decimals, description, version, getRoundData,
/// latestRoundData) and the min/max answer bounds of Chainlink's aggregators. Its owner sets each
/// round by hand (a dev price feeder on `dpg up`, the tests for every refusal case). Used with
/// answer 0 (up) / 1 (down) and startedAt (the time of the last change), it is an L2
/// sequencer-uptime feed. Never deploy it where a price would be worth something.
contract DevAggregator {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
    }

    address public owner;
    uint8 public decimals;
    string public description;
    uint256 public constant version = 4;

    int192 public minAnswer;
    int192 public maxAnswer;
    bool public reverting; // every read reverts: a feed whose call fails

    uint80 public latestRound;
    mapping(uint80 => Round) private _rounds;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    error NotOwner();
    error Reverting();
    error NoDataPresent();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    modifier readable() {
        if (reverting) revert Reverting();
        _;
    }

    constructor(uint8 decimals_, string memory description_, int192 minAnswer_, int192 maxAnswer_) {
        owner = msg.sender;
        decimals = decimals_;
        description = description_;
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
    }

    /// Chainlink's proxies answer their current aggregator here; this feed is its own.
    function aggregator() external view returns (address) {
        return address(this);
    }

    // ------------------------------------------------------------------ AggregatorV3Interface

    function getRoundData(uint80 roundId)
        external
        view
        readable
        returns (uint80, int256, uint256, uint256, uint80)
    {
        Round memory r = _rounds[roundId];
        if (r.updatedAt == 0 && roundId != latestRound) revert NoDataPresent();
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    function latestRoundData() external view readable returns (uint80, int256, uint256, uint256, uint80) {
        Round memory r = _rounds[latestRound];
        return (latestRound, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    // ------------------------------------------------------------------ the owner's setters

    /// A new round: the next round id, answered now.
    function update(int256 answer) external onlyOwner {
        uint80 id = latestRound + 1;
        _set(id, answer, block.timestamp, block.timestamp);
    }

    /// Any round, with every field chosen (the tests' refusal cases).
    function setRound(uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt) external onlyOwner {
        _set(roundId, answer, startedAt, updatedAt);
    }

    function setDecimals(uint8 decimals_) external onlyOwner {
        decimals = decimals_;
    }

    function setBounds(int192 minAnswer_, int192 maxAnswer_) external onlyOwner {
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
    }

    function setReverting(bool reverting_) external onlyOwner {
        reverting = reverting_;
    }

    function transferOwnership(address owner_) external onlyOwner {
        owner = owner_;
    }

    function _set(uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt) private {
        latestRound = roundId;
        _rounds[roundId] = Round(answer, startedAt, updatedAt, roundId);
        emit NewRound(roundId, msg.sender, startedAt);
        emit AnswerUpdated(answer, roundId, updatedAt);
    }
}
