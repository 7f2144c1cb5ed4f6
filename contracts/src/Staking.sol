// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title DPG staking: stake DPG, keep its votes, earn a share of the exchange's fees
/// @notice Staking DPG mints the same amount of sDPG, a receipt that cannot be transferred and
/// that carries the votes of the staked DPG (ERC-5805, timestamp clock): a staker's receipt is
/// delegated to the staker on the first stake (they may delegate it elsewhere afterwards), and
/// DPGGovernor counts DPG votes plus sDPG votes.
///
/// Rewards are paid in `rewardToken` (USDT in production) with the StakingRewards accounting:
/// each reward is spread evenly over `rewardsDuration` seconds (7 days by default) among the
/// stakers in proportion to their stake and the time staked. Nothing depends on the reward
/// token's decimals: rates are in its base units per second, and `rewardPerToken` is a fixed-point
/// number scaled by SCALE = 1e36 (StakingRewards scales it by 1e18, which with a 6-decimal reward
/// token and millions of DPG staked rounds most of a small reward away: 144 USDT over a week among
/// 40M staked DPG paid out only 120; at 1e36 every staker's share is exact to within one base unit).
///
/// Reward for time when nothing is staked is not lost: the reward that would have been paid
/// during that time, and the rounding remainder of each rate (reward - rate x duration), are
/// kept as `unallocated` and added to the next reward notified.
///
/// The owner (the governance timelock) sets the reward period, who may notify rewards, and
/// `feeShareBps`, the share of the exchange's trading fees that goes to stakers.
contract Staking is ERC20, ERC20Votes, Ownable, ReentrancyGuard {
    /// The fixed-point scale of `rewardPerToken` (reward base units per staked base unit).
    uint256 public constant SCALE = 1e36;

    using SafeERC20 for IERC20;

    uint256 public constant MAX_BPS = 10_000;

    IERC20 public immutable stakingToken;
    IERC20 public immutable rewardToken;

    /// Who may notify rewards besides the owner (the exchange's fee distributor).
    address public rewardsDistributor;
    /// Share of trading fees paid to stakers, in basis points (governed by the owner).
    uint256 public feeShareBps;

    uint256 public rewardsDuration = 7 days;
    uint256 public periodFinish;
    uint256 public rewardRate; // reward token base units per second
    uint256 public lastUpdateTime;
    uint256 public rewardPerTokenStored;
    /// Reward not allocated to any staker yet (time with nothing staked, rate rounding);
    /// added to the next notified reward.
    uint256 public unallocated;
    /// Totals since deployment, in reward token base units.
    uint256 public rewardsNotified;
    uint256 public rewardsPaid;

    mapping(address account => uint256) public userRewardPerTokenPaid;
    mapping(address account => uint256) public rewards;

    event Staked(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event RewardPaid(address indexed account, uint256 reward);
    event RewardAdded(uint256 reward, uint256 rate, uint256 periodFinish);
    event RewardsDurationUpdated(uint256 duration);
    event RewardsDistributorUpdated(address distributor);
    event FeeShareUpdated(uint256 feeShareBps);

    error ZeroAmount();
    error NonTransferable();
    error SameToken();
    error NotRewardsNotifier();
    error RewardPeriodRunning();
    error InvalidDuration();
    error RewardTooHigh(uint256 needed, uint256 held);
    error InvalidShare(uint256 bps);

    constructor(IERC20 stakingToken_, IERC20 rewardToken_, address owner_, uint256 feeShareBps_)
        ERC20("Staked DPG", "sDPG")
        EIP712("Staked DPG", "1")
        Ownable(owner_)
    {
        if (address(stakingToken_) == address(rewardToken_)) revert SameToken();
        if (feeShareBps_ > MAX_BPS) revert InvalidShare(feeShareBps_);
        stakingToken = stakingToken_;
        rewardToken = rewardToken_;
        feeShareBps = feeShareBps_;
    }

    // ------------------------------------------------------------------ views

    /// @notice DPG staked in total (equal to the sDPG supply).
    function totalStaked() public view returns (uint256) {
        return totalSupply();
    }

    /// @notice DPG staked by `account` (equal to its sDPG balance).
    function staked(address account) public view returns (uint256) {
        return balanceOf(account);
    }

    function lastTimeRewardApplicable() public view returns (uint256) {
        return block.timestamp < periodFinish ? block.timestamp : periodFinish;
    }

    function rewardPerToken() public view returns (uint256) {
        uint256 supply = totalSupply();
        if (supply == 0) return rewardPerTokenStored;
        return rewardPerTokenStored + (lastTimeRewardApplicable() - lastUpdateTime) * rewardRate * SCALE / supply;
    }

    function earned(address account) public view returns (uint256) {
        return balanceOf(account) * (rewardPerToken() - userRewardPerTokenPaid[account]) / SCALE + rewards[account];
    }

    /// @notice The reward of the whole current period at the current rate.
    function rewardForDuration() external view returns (uint256) {
        return rewardRate * rewardsDuration;
    }

    /// @notice Votes are checkpointed by block timestamp (seconds), like DPGToken's.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    // ------------------------------------------------------------------ stakers

    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _updateReward(msg.sender);
        if (delegates(msg.sender) == address(0)) _delegate(msg.sender, msg.sender);
        stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        _mint(msg.sender, amount);
        emit Staked(msg.sender, amount);
    }

    function withdraw(uint256 amount) public nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _updateReward(msg.sender);
        _burn(msg.sender, amount);
        stakingToken.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    function getReward() public nonReentrant {
        _updateReward(msg.sender);
        uint256 reward = rewards[msg.sender];
        if (reward > 0) {
            rewards[msg.sender] = 0;
            rewardsPaid += reward;
            rewardToken.safeTransfer(msg.sender, reward);
            emit RewardPaid(msg.sender, reward);
        }
    }

    /// @notice Withdraw the whole stake and claim the rewards.
    function exit() external {
        withdraw(balanceOf(msg.sender));
        getReward();
    }

    // ------------------------------------------------------------------ rewards and governance

    /// @notice Start (or extend) a reward period with `reward` more reward token units, which the
    /// caller has already transferred to this contract. During a running period the new reward
    /// is added to what remains of it, and the whole is spread over a fresh `rewardsDuration`.
    /// Refused when the contract does not hold every reward notified and not yet paid.
    function notifyRewardAmount(uint256 reward) external {
        if (msg.sender != owner() && msg.sender != rewardsDistributor) revert NotRewardsNotifier();
        _updateReward(address(0));
        uint256 held = rewardToken.balanceOf(address(this));
        uint256 needed = rewardsNotified + reward - rewardsPaid;
        if (held < needed) revert RewardTooHigh(needed, held);
        rewardsNotified += reward;

        uint256 total = reward + unallocated;
        if (block.timestamp < periodFinish) total += (periodFinish - block.timestamp) * rewardRate;
        uint256 duration = rewardsDuration;
        rewardRate = total / duration;
        unallocated = total - rewardRate * duration;
        lastUpdateTime = block.timestamp;
        periodFinish = block.timestamp + duration;
        emit RewardAdded(reward, rewardRate, periodFinish);
    }

    /// @notice The length of the next reward periods; only between periods.
    function setRewardsDuration(uint256 duration) external onlyOwner {
        if (block.timestamp <= periodFinish) revert RewardPeriodRunning();
        if (duration == 0) revert InvalidDuration();
        rewardsDuration = duration;
        emit RewardsDurationUpdated(duration);
    }

    function setRewardsDistributor(address distributor) external onlyOwner {
        rewardsDistributor = distributor;
        emit RewardsDistributorUpdated(distributor);
    }

    function setFeeShareBps(uint256 bps) external onlyOwner {
        if (bps > MAX_BPS) revert InvalidShare(bps);
        feeShareBps = bps;
        emit FeeShareUpdated(bps);
    }

    // ------------------------------------------------------------------ internals

    function _updateReward(address account) internal {
        uint256 applicable = lastTimeRewardApplicable();
        if (totalSupply() == 0) {
            // nothing staked: what this time would have paid waits for the next notify
            if (applicable > lastUpdateTime) unallocated += (applicable - lastUpdateTime) * rewardRate;
        } else {
            rewardPerTokenStored = rewardPerToken();
        }
        lastUpdateTime = applicable;
        if (account != address(0)) {
            rewards[account] = earned(account);
            userRewardPerTokenPaid[account] = rewardPerTokenStored;
        }
    }

    /// The receipt only moves by staking (mint) and withdrawing (burn).
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        if (from != address(0) && to != address(0)) revert NonTransferable();
        super._update(from, to, value);
    }
}
